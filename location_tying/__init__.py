__version__ = "0.0.1"

def __getattr__(name):
    if name == 'load_encoder':
        from .checkpoint import load_encoder
        return load_encoder
    if name == 'pretrained':  # the encoders shipped with the package: name -> one-line description
        from .pretrained_encoders import pretrained
        return pretrained
    raise AttributeError(f"module 'location_tying' has no attribute {name!r}")
