"""Faces as the models were trained on them: found in a photo or frame, then FFHQ-aligned.

- :mod:`deepinsight.faces.detection`: :class:`FaceFinder`, facenet-pytorch's MTCNN (its weights
  ship inside the facenet-pytorch wheel, so nothing downloads) -> boxes and five landmarks;
- :mod:`deepinsight.faces.alignment`: FFHQ's crop, computed from those landmarks;
- :mod:`deepinsight.faces.policy`: ``faces=auto|detect|off``, i.e. which crops of an image are
  scored, and the warning when that does not match what the model was trained on.
"""

from deepinsight.faces.alignment import align_face, ffhq_quad, is_aligned_crop
from deepinsight.faces.detection import Face, FaceFinder
from deepinsight.faces.policy import FACE_MODES, FaceCrop, FacePolicy, NoFaceError

__all__ = [
    "FACE_MODES",
    "Face",
    "FaceCrop",
    "FaceFinder",
    "FacePolicy",
    "NoFaceError",
    "align_face",
    "ffhq_quad",
    "is_aligned_crop",
]
