"""Floor 1: the tracing core. Trace and Tracer, `bind` (run a primitive eagerly or record it),
`inline`, and the small `lax` builder API the primitive rules emit their nodes with."""
