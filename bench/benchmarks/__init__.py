"""asv suites for fastbp; shared workloads and data live in ``common.py``."""
