"""Text descriptors and text embeddings for prompts and completions (pure: no I/O; docs/text.md).

    profile = build_text_profile(reference_texts)              # plain data: to_dict() / from_dict()
    reference = describe_reference(reference_texts, profile)
    columns = describe(window_texts, profile, usage=None)      # dict[str, np.ndarray]

The columns are ordinary numeric and categorical features of `monitor.drift` (`descriptor_specs`).
Semantic vectors: `monitor.text.embed.embed_texts` (needs the offline model package, docs/text.md).
"""

from monitor.text.descriptors import INPUT_TOKENS, KINDS, OUTPUT_TOKENS, describe, describe_reference, descriptor_specs
from monitor.text.profile import TextProfile, build_text_profile

__all__ = [
    "INPUT_TOKENS",
    "KINDS",
    "OUTPUT_TOKENS",
    "TextProfile",
    "build_text_profile",
    "describe",
    "describe_reference",
    "descriptor_specs",
]
