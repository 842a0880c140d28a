package layertool

// Progress is told of the work a long tool has done, as it goes. A nil
// Progress is allowed. Calls come from the tool's goroutine only.
type Progress interface {
	Add(files int, bytes int64)
}

func report(p Progress, files int, bytes int64) {
	if p != nil {
		p.Add(files, bytes)
	}
}
