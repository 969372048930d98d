"""Images before they reach a model: decoding, layouts, transforms, the demo dataset."""
