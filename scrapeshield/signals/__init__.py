"""Stage 2: detectors, one per module, behind one protocol (``base``); ``registry`` lists them."""
