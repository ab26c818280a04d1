package runtime

// systemAvailable measures the available memory of this Linux system.
func systemAvailable() (int64, string, bool) { return linuxAvailable("/") }
