"""One module per function in functions/ (and the API's own steps), each named as its function."""
