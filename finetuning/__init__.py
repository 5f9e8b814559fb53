"""finetuning: instruction tuning, LoRA, self-instruct, selection, distillation."""
