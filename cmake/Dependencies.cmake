# Every dependency is a Debian 12 package installed by scripts/setup.sh; nothing is downloaded.
find_package(Threads REQUIRED)
find_package(Boost 1.81 REQUIRED CONFIG COMPONENTS headers)
# Asio allocates every coroutine frame too large for its per-thread cache (most of ours, over 2 KiB), and some
# handlers, with std::aligned_alloc: about 16 per proxied request, each several times the cost of operator new
# in the allocator (mimalloc's aligned path). None of those types is over-aligned (alignof <= 16, what operator
# new guarantees), so Asio is told to use operator new. Set on the imported target so every translation unit
# that includes Asio agrees (the setting changes no layout, but one rule for all is simpler to reason about).
set_property(TARGET Boost::headers APPEND PROPERTY INTERFACE_COMPILE_DEFINITIONS
             BOOST_ASIO_DISABLE_STD_ALIGNED_ALLOC BOOST_ASIO_DISABLE_BOOST_ALIGN)
find_package(OpenSSL REQUIRED)
find_package(nlohmann_json 3 REQUIRED CONFIG)
find_package(spdlog REQUIRED CONFIG)
find_package(fmt REQUIRED CONFIG)
find_package(yaml-cpp REQUIRED CONFIG)
find_package(SQLiteCpp REQUIRED CONFIG)
find_package(PkgConfig REQUIRED)
if(LLMPROXY_WITH_POSTGRES)
  # libpqxx 6.4 ships only a pkg-config file.
  pkg_check_modules(PQXX REQUIRED IMPORTED_TARGET libpqxx libpq)
endif()
# The Redis cache backend's client (hiredis 0.14 ships only a pkg-config file).
pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis)
if(LLMPROXY_BUILD_TESTS)
  find_package(Catch2 2 REQUIRED CONFIG)
endif()
