"""fastbp benchmarks: the asv suite (``bench/benchmarks``) and ``bench/compare.py``.

asv imports this package as ``bench`` (``"benchmark_dir": "bench"`` in asv.conf.json).
"""
