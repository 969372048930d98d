"""The shortcut audit: can a file's format, compression, size or global statistics alone tell
real from fake? (``python -m deepinsight.audit``)."""
