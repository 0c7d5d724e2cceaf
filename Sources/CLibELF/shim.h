// The one place bpfsim reaches libelf (elfutils). Only BPFLoader imports this module,
// and no libelf type appears in its public interface.
#ifndef BPFSIM_CLIBELF_SHIM_H
#define BPFSIM_CLIBELF_SHIM_H

#include <libelf.h>
#include <gelf.h>

#endif
