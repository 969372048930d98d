"""``python -m deepinsight.audit``."""

from deepinsight.audit.cli import main

raise SystemExit(main())
