"""WaveSpeed's limits and wire shapes that we could not confirm from its documentation.

Kept in one place so a correction is a one-line change.
"""

MAX_TEXT_LENGTH = 1000  # characters of the text prompt, after trimming; unconfirmed
MAX_POINTS = 64
MAX_BOXES = 64
MODEL_PATH = "wavespeed-ai/sam3-image"
MODEL_ID = MODEL_PATH  # the ``model`` a prediction reports and the history filters on; assumed
# Points go out as {x, y, label} and boxes as {x_min, y_min, x_max, y_max}, in pixels (fal's SAM-3
# names); unconfirmed for WaveSpeed. apply_mask is always sent explicitly (fal defaults it to true).
