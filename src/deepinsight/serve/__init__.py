"""Serve a detector over HTTP: ``python -m deepinsight.serve ckpt=PATH``.

``uploads`` guards the door (body size, multipart or raw bytes read in memory, the image check
``predict`` uses, one JSON error per bad request); ``api`` scores images in LitServe's worker
processes with dynamic batching; ``app`` puts them together with the web page and ``/info``;
``cli`` is the command. Scores equal ``predict``'s: the same detector, decoder and preprocessing.
"""
