"""The public inference routes, one module each (chat, messages, responses, embeddings,
images, token counts, the model list, health, the OpenAPI document), and the bodies they
take (validation)."""
