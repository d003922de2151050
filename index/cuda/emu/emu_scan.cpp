/* emu_scan.cpp: cuda_scan.cu compiled for the CPU emulation (see cuda_emu.h). */
#include "../cuda_scan.cu"
