import t from 'tap'
t.test('x', async (t) => { console.error(JSON.stringify(process.execArgv)); t.pass() })
