// Out-of-line anchors for the repository interfaces, so their vtables live in one object file.
#include "llmproxy/db/database.hpp"
#include "llmproxy/db/driver.hpp"
