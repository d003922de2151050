/* emu_scan_mma.cpp: cuda_scan_mma.cu compiled for the CPU emulation (see cuda_emu.h). */
#include "../cuda_scan_mma.cu"
