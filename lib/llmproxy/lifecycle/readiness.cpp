#include "llmproxy/lifecycle/readiness.hpp"

namespace llmproxy::lifecycle {

namespace {

constexpr std::uint8_t kPhaseMask = 0x3;
constexpr std::uint8_t kPublished = 0x4;

constexpr Phase phase_of(std::uint8_t state) { return static_cast<Phase>(state & kPhaseMask); }

/// `state` with its phase replaced by `phase`; the published bit is kept.
constexpr std::uint8_t with_phase(std::uint8_t state, Phase phase) {
  return static_cast<std::uint8_t>((state & kPublished) | static_cast<std::uint8_t>(phase));
}

}  // namespace

std::string_view to_string(Phase phase) {
  switch (phase) {
    case Phase::booting: return "booting";
    case Phase::migrating: return "migrating";
    case Phase::ready: return "ready";
    case Phase::stopping: return "stopping";
  }
  return "unknown";
}

Phase Readiness::phase() const noexcept { return phase_of(state_.load(std::memory_order_acquire)); }

bool Readiness::published() const noexcept { return (state_.load(std::memory_order_acquire) & kPublished) != 0; }

void Readiness::begin_migrating() noexcept {
  std::uint8_t old = state_.load(std::memory_order_relaxed);
  while (phase_of(old) == Phase::booting &&
         !state_.compare_exchange_weak(old, with_phase(old, Phase::migrating), std::memory_order_acq_rel)) {
  }
}

void Readiness::publish() noexcept {
  std::uint8_t old = state_.load(std::memory_order_relaxed);
  for (;;) {
    const Phase next = phase_of(old) == Phase::stopping ? Phase::stopping : Phase::ready;
    // Release: what the boot thread wrote before this call is visible to whoever then sees kPublished.
    if (state_.compare_exchange_weak(old, with_phase(kPublished, next), std::memory_order_acq_rel)) return;
  }
}

bool Readiness::begin_stopping() noexcept {
  std::uint8_t old = state_.load(std::memory_order_relaxed);
  for (;;) {
    if (phase_of(old) == Phase::stopping) return false;
    if (state_.compare_exchange_weak(old, with_phase(old, Phase::stopping), std::memory_order_acq_rel)) return true;
  }
}

}  // namespace llmproxy::lifecycle
