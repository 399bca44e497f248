"""Video decoding, frame sampling and video ids."""
