# Every dependency is a Debian 12 package installed by scripts/setup.sh; nothing is downloaded.
find_package(Threads REQUIRED)
find_package(Boost 1.81 REQUIRED CONFIG COMPONENTS headers)
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
