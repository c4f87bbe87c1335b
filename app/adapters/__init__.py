"""Agency adapters: customs, inspection, tax and FX. The protocol is in ``base``."""
