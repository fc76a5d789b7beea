"""Instances from binary masks, pure and numpy-based: connected components, COCO RLE, polygons and the
COCO file. The numpy-based modules are imported by the Store step only (numpy and Pillow come from the
imaging layer); `coco` is plain Python, and the result cache uses it too (a hit's COCO file)."""
