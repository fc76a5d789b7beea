"""The local stack: moto, in-process Lambdas and emulators."""
