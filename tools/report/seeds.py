# SPDX-License-Identifier: MIT
"""The numbers the seed papers printed, copied from /work/shared/seeds/ (../shared/seeds/ from the
repository), with where they are. Only printed numbers are here: figures whose values the text
does not state are described by the claim the text makes about them.
"""

TCC = {
    "source": "Exokernel and Exotools, final technical report AFRL-IF-RS-TR-2002-1 (MIT, 2002), "
              "section 2.3.1 ('C), seed 001_b3aa2c2f7d0ffdd0.txt",
    # cycles per generated instruction
    "one_pass_cycles": 100,
    "optimizing_cycles": 600,
    "quote": "approximately 100 cycles per generated instruction when tcc only performs simple "
             "dynamic code optimization, and approximately 600 cycles per generated instruction "
             "when all of tcc's dynamic optimizations are turned on",
}

DPF = {
    "source": "DPF: Fast, Flexible Message Demultiplexing using Dynamic Code Generation "
              "(Engler, Kaashoek), section 4, seed 003_d37d312c714942e0.txt",
    # Table 2: time to recognize fixed and variable sized TCP/IP headers (microseconds) with 1, 2
    # and >= 3 filters differing in one disjunctive atom (the destination port).
    "table2": {
        "columns": ["1 filter", "2 filters", ">= 3 filters"],
        "fixed": [1.14, 1.23, 1.39],
        "variable": [1.27, 1.35, 1.51],
    },
    # Table 3: time to recognize 10 fixed-sized TCP/IP headers (microseconds).
    "table3": {
        "MPF": {"unexpected": 71, "expected": 35},
        "PATHFINDER": {"unexpected": 39, "expected": 19},
        "DPF": {"unexpected": 1.5, "expected": 1.5},
    },
    "table3_claim": "DPF is 25-50 times faster than MPF and 13-26 times faster than PATHFINDER",
    # Figure 3: time vs depth of the protocol stack; a plot, values not printed.
    "figure3_claim": "each level is two atoms; DPF is approximately 35-40 times faster than "
                     "PATHFINDER (y axis 0-80 us, depth 0-8)",
    "insert_us": 220,
    "insert_claim": "worst-case insertion of the TCP/IP filter: 220 microseconds, about three "
                    "times PATHFINDER; code generation is less than 40% of it",
}

ASH = {
    "source": "ASHs: Application-Specific Handlers for High-Performance Messaging "
              "(Wallach, Engler, Kaashoek), section 5, seed 000_275bea52ae67e401.txt",
    # Table 4 (page 8): throughput of copies of 4096 bytes, MB/s.
    "table4": {"single copy": 20, "double copy": 14, "double copy (uncached)": 11},
    # Table 5 (page 9): MB/s; columns copy & checksum, copy & checksum & byteswap.
    "table5": {
        "Separate": (11, 5.8),
        "Separate / uncached": (10, 5.1),
        "C integrated": (16, 8.3),
        "ASH (DILP)": (17, 8.2),
    },
    # Table 6 (page 9): raw round trip for remote increment on AN2, microseconds.
    "table6": {"with ASH": 142, "without ASH": 176},
    # Table 7 (page 9): TCP on AN2.
    "table7": {"latency_us": (347, 364), "throughput_MBps": (4.52, 4.10)},
    "figure5_claim": "as the number of processes grows, the user-level round trip grows (the "
                     "scheduler does not know a message is waiting); with ASHs it stays nearly "
                     "constant (a plot, values not printed)",
    # Section 5.2: sandboxing overhead of a remote write, sandboxed vs application-specific.
    "sandbox": {"40": "0-13%", "128": "3-7%"},
    "server_us": 660,
    "server_claim": "A dynamically composed UDP server serves a 1 KB page in 660 microseconds, "
                    "the same as the user-space server with static protocols (section 5.4)",
}

TEMPO = {
    "source": "Automatic specialization of protocol stacks in operating system kernels "
              "(Tempo), section 4.2, page 10, seed 002_2467a3fbc8de9168.txt",
    "figure3a": "specialized Socket/UDP/IP send code runs about 25% faster (CPU cycles, "
                "Pentium III 700 MHz)",
    "figure3b": "the specialized code is up to 20 times smaller than the original",
    "figure4": "UDP throughput (Netperf) +16% for 64-byte packets and +13% for 1 KB on the "
               "Pentium III; +27% on the 486 and +18% on the iPAQ for 1 KB",
    "speedup": 1.25,
    "size_factor": 20,
}
