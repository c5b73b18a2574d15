"""The psutil sampler: collectors → batched, spooled database writes; latest values to the cache."""
