"""Instances from binary masks, pure and numpy-based: connected components, COCO RLE, polygons and the
COCO file. Imported by the Store step only (numpy and Pillow come from the imaging layer)."""
