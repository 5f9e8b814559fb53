"""data_tooling: the governed multilingual corpus, tokenizer training and Megatron datasets."""
