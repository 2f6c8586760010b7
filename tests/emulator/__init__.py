"""Small extensions of moto for what it does not implement, each naming the gap it fills."""
