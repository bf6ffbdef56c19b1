"""The packaged recipes (YAML). Find them by name with `talkface.recipes.find_recipe`."""
