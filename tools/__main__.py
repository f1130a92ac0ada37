"""python -m sporeflow.tools SUBCOMMAND ... (the same as the sporeflow-ir console script)."""
import sys

from .ir_tool import main

sys.exit(main())
