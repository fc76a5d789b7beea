"""Instances from binary masks, pure and numpy-based: connected components, COCO RLE, polygons, and the
result files (``instances.json`` in `files`, the COCO file in `coco`). The numpy-based modules are
imported by the Store step only (numpy and Pillow come from the imaging layer); `files` and `coco` are
plain Python, and the result cache uses them too (a hit's files, written again for its job)."""
