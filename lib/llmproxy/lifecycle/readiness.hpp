#pragma once
/// Where the server is in its life, and the one way boot hands its services to the request path.
///
///     booting -> migrating -> ready -> stopping        (a stop may also begin while booting or migrating)
///
/// The boot thread connects (booting), prepares the schema (migrating), builds the database-backed services and
/// calls publish() (ready). Everything that serves requests — /ready, /health, /manage, /v1 and the metric
/// gauges — reads those services through a Published<T> view, which is null until publish() ran. publish() is a
/// release and published() an acquire on one atomic: whatever the boot thread wrote before publish() is visible
/// to a thread that sees published() == true. Published services stay valid while the server stops; their owner
/// destroys them only after the I/O threads have stopped.
///
/// A module of its own below every other one (it uses nothing but the standard library), so that ops, admin and
/// proxy, and auth, audit and upstream for their metrics, may all depend on it without depending on each other.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>
#include <type_traits>

namespace llmproxy::lifecycle {

enum class Phase : std::uint8_t { booting, migrating, ready, stopping };

/// "booting", "migrating", "ready", "stopping" (for logs).
std::string_view to_string(Phase phase);

/// The phase and whether the services are published, in one atomic. Every method may be called from any thread;
/// the transitions only move forward and are lock-free compare-and-swap loops.
class Readiness {
 public:
  Phase phase() const noexcept;
  bool stopping() const noexcept { return phase() == Phase::stopping; }
  /// True once publish() ran: in `ready`, and in `stopping` when boot had finished before or during the stop.
  bool published() const noexcept;

  /// Boot thread: connected, now preparing the schema. No effect once stopping.
  void begin_migrating() noexcept;
  /// Boot thread, once everything the Published<T> views point to is built. Enters `ready`, or stays in
  /// `stopping` if a stop began meanwhile; the services are published either way, so requests the server is
  /// still finishing may use them while it drains.
  void publish() noexcept;
  /// Enters `stopping` (SIGTERM/SIGINT, or a failed boot). Returns false if a stop had already begun.
  bool begin_stopping() noexcept;

 private:
  // The phase in the low two bits; bit 2 is set once published (readiness.cpp).
  std::atomic<std::uint8_t> state_{static_cast<std::uint8_t>(Phase::booting)};
};

/// A view of one object that the boot thread builds and then publishes through a Readiness: get() is null until
/// publish(), then the object. Cheap to copy; the Readiness and the object's slot must outlive every copy.
/// `T` is usually const: readers only look.
template <class T>
class Published {
 public:
  using Owned = std::unique_ptr<std::remove_const_t<T>>;

  /// `object` already has its address (e.g. a struct of pointers); the boot thread fills it in before publish().
  Published(const Readiness& readiness, T& object) : readiness_(&readiness), object_(&object) {}
  /// `owner` is empty now; the boot thread sets it before publish().
  Published(const Readiness& readiness, const Owned& owner) : readiness_(&readiness), owner_(&owner) {}

  /// Null until published. Any thread.
  T* get() const noexcept {
    if (!readiness_->published()) return nullptr;
    return owner_ != nullptr ? owner_->get() : object_;
  }

 private:
  const Readiness* readiness_;
  T* object_ = nullptr;
  const Owned* owner_ = nullptr;
};

}  // namespace llmproxy::lifecycle
