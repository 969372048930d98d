"""``python -m deepinsight.report``."""

from deepinsight.report.cli import main

raise SystemExit(main())
