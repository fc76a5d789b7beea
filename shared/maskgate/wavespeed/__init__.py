"""WaveSpeed, the hosted SAM3 model: its client, its wire shapes and limits, its callback signature."""
