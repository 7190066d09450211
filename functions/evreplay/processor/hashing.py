"""The inputs_hash of an aggregate version (pure).

inputs_hash: h(i) = sha256 of the canonical JSON `[event_id, payload_sha256]` as a 256-bit
integer, and inputs_hash = Σ h(i) mod 2^256 over the version's inputs, shown as 64 hex digits.
A sum is order-independent and can be accumulated batch by batch with DynamoDB `ADD`: each limb
sum stays exact in DynamoDB's 38-digit numbers (2^32 per input leaves room for ~10^28 inputs),
and the carries are folded on read. It is a fingerprint for comparing versions, not a
commitment an adversary cannot forge.

"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from evreplay.core.event_ids import canonical_json, sha256_hex

HASH_BITS = 256
LIMB_BITS = 32
LIMB_COUNT = HASH_BITS // LIMB_BITS
_MODULUS = 1 << HASH_BITS
_LIMB_MASK = (1 << LIMB_BITS) - 1


def input_hash(event_id: str, payload_hash: str) -> int:
    """h(i) of one input: sha256 of the canonical JSON `[event_id, payload_sha256]`."""
    return int(sha256_hex(canonical_json([event_id, payload_hash])), 16)


def to_limbs(value: int) -> tuple[int, ...]:
    """A 256-bit value as 32-bit limbs, least significant first."""
    value %= _MODULUS
    return tuple((value >> (LIMB_BITS * i)) & _LIMB_MASK for i in range(LIMB_COUNT))


def from_limbs(limbs: Sequence[int]) -> int:
    """Σ limb_i·2^(32·i) mod 2^256: limb sums may exceed 32 bits; their carries fold in here."""
    return sum(int(limb) << (LIMB_BITS * i) for i, limb in enumerate(limbs)) % _MODULUS


def render_hash(value: int) -> str:
    return f"{value % _MODULUS:064x}"


def inputs_hash(inputs: Iterable[tuple[str, str]]) -> str:
    """The inputs_hash of (event_id, payload_sha256) pairs computed in one go: the reference the
    batch-by-batch accumulation must equal."""
    return render_hash(sum(input_hash(event_id, digest) for event_id, digest in inputs))
