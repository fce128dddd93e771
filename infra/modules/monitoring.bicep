// Log Analytics workspace + workspace-based Application Insights.

@description('Name of the Log Analytics workspace.')
param workspaceName string

@description('Name of the Application Insights component.')
param appInsightsName string

@description('Azure region of both resources.')
param location string

@description('Tags applied to both resources.')
param tags object

@description('Days the workspace keeps logs (30-730). Telemetry is operational, not a book or record: the audit trail lives in PostgreSQL and the immutable archive.')
@minValue(30)
@maxValue(730)
param retentionInDays int

resource workspace 'Microsoft.OperationalInsights/workspaces@2025-02-01' = {
  name: workspaceName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    IngestionMode: 'LogAnalytics'
  }
}

@description('Name of the Log Analytics workspace.')
output workspaceName string = workspace.name

@description('Name of the Application Insights component.')
output appInsightsName string = appInsights.name

@description('Application Insights connection string (an ingestion endpoint and key, not a credential to read data).')
output appInsightsConnectionString string = appInsights.properties.ConnectionString
