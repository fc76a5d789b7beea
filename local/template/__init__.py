"""template.yaml read offline: the SAM template and its intrinsics, its translation, --parameter-overrides."""
