// The one place bpfsim includes capstone. Only X86Disassembly imports this module.
#include <capstone/capstone.h>
