"""DNS providers: how the registry's name (or fixed address) follows the instance, one module each."""
