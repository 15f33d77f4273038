"""Convert stage: checkpoint -> chip IR -> passes -> writers (netx, NIR, ONNX) -> deployment bundle."""
