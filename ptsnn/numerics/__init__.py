"""Integer arithmetic of Loihi as Lava's bit-accurate (`fixed_pt`) process models implement it."""
