"""The functions on their own, in fresh interpreters: cold init, the built layer, the api's warm overhead."""
