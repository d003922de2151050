/* emu_scan_b1.cpp: cuda_scan_b1.cu compiled for the CPU emulation (see cuda_emu.h). */
#include "../cuda_scan_b1.cu"
