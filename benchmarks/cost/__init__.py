"""Cost per image at list prices: what a window of jobs causes on the local stack, counted and priced."""
