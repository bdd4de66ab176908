"""Golden Hetzner images with a runtime preinstalled.

- `build.build_golden(...)` (`BuildOptions`): builder server, install, snapshot, record.
- `recipe.GoldenRecipe`: what an image is made of, as data.
"""
