"""sporeflow's tools: `sporeflow-ir` (the IR tool) and op_coverage.

Installed as the package `sporeflow.tools` (pyproject maps it onto this folder), runnable as
`sporeflow-ir ...`, `python -m sporeflow.tools ...` or, from a checkout, `python tools/ir_tool.py ...`.
"""
