"""DeepInsight's Hydra configs, shipped as package data (``deepinsight.conf``).

This folder is edited here, at the top of the repository; pyproject.toml maps it into the
package so installed console scripts find it. The file exists because setuptools' editable
install can only map a folder that is a regular package.
"""
