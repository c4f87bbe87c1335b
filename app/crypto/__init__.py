"""Keys, certificates and signatures (SM2 with SM3, RSA), on well-kept libraries: GmSSL, cryptography,
asn1crypto. The XML signature itself (XML-DSig) is in ``app/ceb/signature.py``."""
