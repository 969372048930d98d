"""Published numbers the framework is compared against (data files, read with importlib.resources).

``seed_results.csv``: the seed student study's test results on Kaggle's 140k Real and Fake Faces
(20k test images), transcribed from its slides; the ``source`` column says where each row is from.
"""
