"""Exporters: each imports the fine-tuned model and writes it in another format (the model
never imports an exporter)."""
